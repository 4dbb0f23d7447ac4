"""Latent Explorer's library: data, VAE models, training, checkpoints, evaluation, projection.

Nothing here imports streamlit or plotly, and nothing runs at import time.
"""

__version__ = "0.1.0"

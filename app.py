"""Latent Explorer: train small VAEs and explore their latent space in the browser.

Run with ``streamlit run app.py``. This file only sets the page up, shows the shared run picker
and hands over to the page chosen in the navigation.
"""

import streamlit as st

import ui  # imports torch, numpy and the vae package before the garbage collector is frozen

ui.freeze_gc_once()
st.set_page_config(page_title="Latent Explorer", page_icon=":material/explore:", layout="wide")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/explore.py", title="Explore", icon=":material/scatter_plot:"),
    st.Page("app_pages/decode.py", title="Decode", icon=":material/tune:"),
    st.Page("app_pages/interpolate.py", title="Interpolate", icon=":material/timeline:"),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/table_rows:"),
]

page = st.navigation(PAGES)
ui.run_picker()
page.run()

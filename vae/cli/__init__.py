"""The command line, ``python -m vae``: the parser and run commands (main), latent-space verbs, text output."""

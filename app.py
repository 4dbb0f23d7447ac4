"""Latent Explorer: train small VAEs and explore their latent space in the browser.

Run with ``streamlit run app.py``. This file is the frame: it sets the page up, lists the pages, shows the
shared run picker and hands over to the page chosen in the navigation (``docs/ARCHITECTURE.md``). `streamlit run`
first imports it to find the server (``app``: Streamlit's own, plus the few routes of ``ui.served``), then runs it
as each page view's script (``__name__ == "__main__"``).
"""

import os

import streamlit as st

if __name__ == "__main__":  # each page view's script
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")  # before torch loads OpenMP: see vae/cli/main.py

    from vae.runs import places, standby  # light: nothing heavy loaded yet

    if not places.has_runs():  # a new install: the first click is likely Home's demo, whose training process
        standby.prepare()  # starts loading torch now, while this server loads its own

    from ui import cache, history, runtime, sidebar  # imports torch, numpy and vae before gc is frozen

    runtime.configure_process()
    cache.start_umap_warm_up()  # the map worker: compiles UMAP's code in a process of its own, once per server
    st.set_page_config(page_title="Latent Explorer", page_icon=runtime.page_icon(), layout="wide")

    PAGES = [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("app_pages/explore.py", title="Explore", icon=":material/scatter_plot:"),
        st.Page("app_pages/decode.py", title="Decode", icon=":material/tune:"),
        st.Page("app_pages/interpolate.py", title="Interpolate", icon=":material/timeline:"),
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare:"),
        st.Page("app_pages/runs.py", title="Runs", icon=":material/table_rows:"),
    ]

    page = st.navigation(PAGES)
    sidebar.run_picker()
    history.install()  # Back returns to the page before, with its view, in one press
    page.run()
else:  # `streamlit run app.py` imports this file to find its server
    from ui import served

    app = st.App(__file__, routes=served.ROUTES)

"""The app's Streamlit glue: everything the pages share. ``vae/`` never imports it.

``state``     session-state keys shared between pages, declared once, with typed get/set
``runtime``   process-wide set-up of the server (torch threads, gc freeze, the tab icon, the runs folder)
``sidebar``   the shared run picker
``cache``     cached models, data, codes and maps; background map fitting
``pictures``  decoding and PNGs, one enlargement rule
``figures``   every Plotly figure
``forms``     the Train form: widget values to configs
``training``  the Train page's live and final run panels
``maps``      the Explore map: click grid, label groups, picks, CSV
``runs``      the Runs page's table and actions
``decoder/``  the in-browser decoder component (Python, JS and CSS together)
``serving``   start the app on 127.0.0.1 for browser tests, benchmarks and the tour

Importing the package imports nothing heavy; each page imports the modules it uses.
"""

"""decode page (being built)."""

import streamlit as st

st.title("Decode")
st.info("This page is being built.")

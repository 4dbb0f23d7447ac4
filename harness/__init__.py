"""The browser harness the tests and benchmarks share: a Streamlit server on 127.0.0.1 and Chromium (Playwright)."""

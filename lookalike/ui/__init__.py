"""The Streamlit app (``lookalike ui``): pages that call only the library API.

Shipped inside the package as ``lookalike.ui``; ``app.py`` is the script Streamlit runs,
one module per page, and :mod:`.common` holds what the pages share.
"""

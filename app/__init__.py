"""LEWEL explorer's Streamlit front end: a client of the inference service (``api/``) that draws what the
``lewel`` library computes. Start it with ``python -m app`` (service and app) or ``streamlit run app/main.py``."""

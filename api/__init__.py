"""The LEWEL inference service: a FastAPI application serving what ``lewel`` computes.

Start it with ``uvicorn api.main:app``, ``python -m api`` or ``lewel-serve``; settings come from ``LEWEL_*`` environment
variables (``api.settings.Settings``). The routes only decode, validate, call ``lewel`` and serialise.
"""

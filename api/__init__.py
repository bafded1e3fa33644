"""The LEWEL inference service: a FastAPI application serving what ``lewel`` computes.

Start it with ``uvicorn api.main:app``, ``python -m api`` or ``lewel-serve``; settings come from ``LEWEL_*`` environment
variables (``api.settings.Settings``). ``python -m api.ray_serve`` runs replicas of it on Ray Serve (docs/ray.md). The routes only decode, validate, call ``lewel`` and serialise.
"""

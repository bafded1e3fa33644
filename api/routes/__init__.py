"""The service's routers: health, models, maps, embeddings, metrics."""

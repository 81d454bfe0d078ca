"""The model registry: the one catalogue (models.toml), downloads, loading, ListModels."""

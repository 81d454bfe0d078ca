"""Configuration files shipped inside the package (models.toml, plans.toml), found from the install."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent


def config_file(name: str) -> Path:
    """The packaged configuration file `name` (works from a source tree and from a wheel)."""
    return CONFIG_DIR / name

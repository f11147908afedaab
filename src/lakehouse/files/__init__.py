"""File sources: fetching files into the raw zone and loading them into raw Iceberg tables."""

"""File IO at the edge: usage records from CSV, JSON Lines and Parquet, and metered results out."""

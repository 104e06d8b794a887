"""The run spec: YAML read with positions, the pydantic models built from the registry, one-line errors."""

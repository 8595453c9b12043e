"""Built-in exercises, one module per catalogue section (EXERCISES.md).

Each module registers its exercises on import; ``registry.BUILTIN_MODULES`` lists them.
"""

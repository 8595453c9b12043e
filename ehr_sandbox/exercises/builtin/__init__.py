"""Built-in exercises, one module per catalogue section (EXERCISES.md).

Each module registers its exercises on import; ``registry.BUILTIN_MODULES`` lists them. (The
package is not called ``catalog`` so that it never shadows the ``exercises.catalog()``
function.)
"""

"""`python -m chatplane.config > docs/configuration.md` prints the configuration reference."""

from chatplane.config import reference_markdown

print(reference_markdown(), end="")

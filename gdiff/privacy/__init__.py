"""Privacy checks of synthetic people: KING kinship (`kinship`), the release gate (`gate`)."""

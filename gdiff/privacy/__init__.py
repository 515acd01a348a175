"""Privacy checks on the synthetic people: KING kinship (`kinship`) and the release gate (`gate`)."""

"""The project's own library: helpers the stages import."""

"""Build-time code: turns the uop table into stencils. Needs the pinned clang."""

"""The tracing front end: hot loops found, recorded, lowered to uops, entered."""

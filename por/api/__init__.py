"""por.api — see DESIGN §2."""

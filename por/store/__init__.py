"""por.store — see DESIGN §2."""

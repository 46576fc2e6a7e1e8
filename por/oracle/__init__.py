"""por.oracle — see DESIGN §2."""

"""por.service — see DESIGN §2."""

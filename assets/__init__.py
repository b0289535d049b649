"""Robot and prop models, one Menagerie-style folder per robot; resolved from the installed package."""

"""The command-line face: parses arguments, calls the domain and IO modules, prints results."""

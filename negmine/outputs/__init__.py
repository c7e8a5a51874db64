"""What gets written and where: formats, manifest, names, report, and the writers."""

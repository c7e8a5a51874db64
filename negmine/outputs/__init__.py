"""What gets written and where: formats, manifest, report, the dedup command's report and copy, and
the writers. (File names are `negmine.naming`: the sources and positives name things too.)"""

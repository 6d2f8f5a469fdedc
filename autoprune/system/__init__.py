"""What touches the operating system: advisory file locks, sections a stop signal must not
cut in half, database URLs (and the passwords kept out of files and logs), names confined
to their folder, ``.npz`` files read with their sizes checked, and importing the user's own
code.
"""

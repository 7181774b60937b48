"""The ground floor: settings, bounded calls and error groups every radio24 process stands on.

Nothing here imports another radio24 package.
"""

"""Git-native registry: validated remote URLs, a hardened git runner and per-repository mirrors.

``urls`` checks everything a user can type (remote URLs, ref names, SHAs) before git is ever
spawned; ``git`` runs git with hooks, prompts, submodules and unlisted protocols switched off and
keeps one bare mirror per repository from which workflow files are read and runs are checked out.
"""

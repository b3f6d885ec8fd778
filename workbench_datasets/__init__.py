"""Dataset builders and manifests; data itself is written under the git-ignored `data/`."""

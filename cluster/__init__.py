"""Running the search on Ray clusters: a local multi-node cluster for development and tests
(`cluster.local`), cloud launcher YAMLs (AWS, GCP), KubeRay manifests and a SLURM script.
See cluster/README.md."""

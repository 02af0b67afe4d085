"""A local Kubernetes cluster for kube-etl's tests and demo, run from binaries without Docker.

`cluster.LocalCluster` starts a real control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler), a throwaway Postgres server and the pod runner (`podrunner`), the project's only
stand-in: it takes kubelet's place and runs each pod's containers as local processes. `etl-localcluster`
(`cli`) is the command line for the same.

The package imports nothing here, so that `python -m etl_localcluster.podrunner` loads each module once.
"""

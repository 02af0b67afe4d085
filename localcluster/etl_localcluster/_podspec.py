"""Turn a pod's container spec into what a local process needs: files, environment, command and folder.

The pod runner's pod worker (`_podworker`) calls `prepare_containers` before it starts a pod's processes.
Everything here works on the pod as a JSON dictionary and reads Secrets and ConfigMaps through an
`ObjectSource`, so the rules can be tested without an API server.

How the process differs from a container that runs the same command in an image:

- Secret, ConfigMap, downward API and projected volumes are written as files into a folder per pod.
  `emptyDir` is an empty folder there, and `hostPath` is the host path itself. The files are written once,
  when the pod starts, so later changes to the Secret or ConfigMap do not reach them.
- The process gets host paths, not the mount paths. Every environment value, command or argument item and
  `workingDir` that starts with a volume mount's `mountPath` is rewritten to the matching host folder.
  Values that only contain a mount path further in (`--config=/etc/app/config.ini`) are not rewritten.
- Service account tokens are not written, and no `KUBERNETES_SERVICE_*` variables are set, so in-cluster
  Kubernetes clients do not work in these processes.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

JSON = dict[str, Any]

POD_IP = "127.0.0.1"
_DEFAULT_FILE_MODE = 0o644
_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ContainerConfigError(Exception):
    """A container's configuration cannot be resolved.

    A transient error (a Secret that does not exist yet) may go away, so the caller retries. A permanent
    error (a field that the pod runner does not support) stays.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ObjectSource(Protocol):
    """Read access to the data of Secrets and ConfigMaps."""

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """Return the decoded data of Secret NAMESPACE/NAME, or None if it does not exist."""
        ...

    def config_map_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """Return the data and binary data of ConfigMap NAMESPACE/NAME, or None if it does not exist."""
        ...


@dataclass(frozen=True)
class MountTable:
    """The volume mounts of one container: mount path to host path."""

    host_paths: Mapping[str, Path] = field(default_factory=dict)

    def rewrite(self, value: str) -> str:
        """Return VALUE with a leading mount path replaced by its host path (the longest mount wins)."""
        for mount_path in sorted(self.host_paths, key=len, reverse=True):
            if value == mount_path:
                return str(self.host_paths[mount_path])
            if value.startswith(mount_path + "/"):
                return str(self.host_paths[mount_path]) + value[len(mount_path) :]
        return value


@dataclass(frozen=True)
class PreparedContainer:
    """A container ready to run as a local process."""

    name: str
    image: str
    argv: list[str]
    # The command and args as the pod spec writes them, before `$(NAME)` expansion, so they are safe to
    # log: an expanded argument may contain a Secret's value.
    spec_command: str
    # Variables that the pod defines (env and envFrom), after mount path rewriting.
    environment: dict[str, str]
    working_dir: Path | None


def expand_references(text: str, variables: Mapping[str, str]) -> str:
    """Expand `$(NAME)` references in TEXT as Kubernetes does for env values, command and args.

    `$$` is a literal `$`, and a reference to an undefined variable stays as written.
    """
    result: list[str] = []
    index = 0
    while index < len(text):
        if text.startswith("$$", index):
            result.append("$")
            index += 2
            continue
        match = _REFERENCE.match(text, index)
        if match:
            name = match.group(1)
            result.append(variables.get(name, match.group(0)))
            index = match.end()
            continue
        result.append(text[index])
        index += 1
    return "".join(result)


def field_value(pod: JSON, field_path: str) -> str:
    """Return the value of a downward API FIELD_PATH (`metadata.name`, `spec.nodeName`, ...) for POD."""
    metadata = pod.get("metadata", {})
    spec = pod.get("spec", {})
    simple: dict[str, Callable[[], str]] = {
        "metadata.name": lambda: str(metadata.get("name", "")),
        "metadata.namespace": lambda: str(metadata.get("namespace", "")),
        "metadata.uid": lambda: str(metadata.get("uid", "")),
        "spec.nodeName": lambda: str(spec.get("nodeName", "")),
        "spec.serviceAccountName": lambda: str(spec.get("serviceAccountName", "")),
        "status.podIP": lambda: POD_IP,
        "status.podIPs": lambda: POD_IP,
        "status.hostIP": lambda: POD_IP,
        "status.hostIPs": lambda: POD_IP,
        "metadata.labels": lambda: _format_map(metadata.get("labels", {})),
        "metadata.annotations": lambda: _format_map(metadata.get("annotations", {})),
    }
    if field_path in simple:
        return simple[field_path]()
    subscript = _SUBSCRIPT.match(field_path)
    if subscript:
        kind, key = subscript.groups()
        return str(metadata.get(kind, {}).get(key, ""))
    raise ContainerConfigError(f"fieldRef {field_path!r} is not supported by the pod runner", permanent=True)


def _format_map(values: Mapping[str, str]) -> str:
    # The downward API writes whole label and annotation maps as key="value" lines, sorted by key.
    return "\n".join(f'{key}="{values[key]}"' for key in sorted(values))


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


def _lookup(
    source: ObjectSource, kind: str, namespace: str, name: str, optional: bool
) -> dict[str, bytes] | None:
    data = (
        source.secret_data(namespace, name) if kind == "Secret" else source.config_map_data(namespace, name)
    )
    if data is None and not optional:
        raise ContainerConfigError(f'{kind.lower()} "{name}" not found in namespace "{namespace}"')
    return data


def _key_value(source: ObjectSource, kind: str, namespace: str, reference: JSON) -> str | None:
    name, key, optional = reference.get("name", ""), reference["key"], bool(reference.get("optional", False))
    data = _lookup(source, kind, namespace, name, optional)
    if data is None:
        return None
    if key not in data:
        if optional:
            return None
        raise ContainerConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return _decode(data[key])


def resolve_environment(pod: JSON, container: JSON, source: ObjectSource) -> dict[str, str]:
    """Return the variables that CONTAINER defines through envFrom and env, in Kubernetes order.

    envFrom comes first and env entries override it. `$(NAME)` in an env value refers to variables
    defined before it.
    """
    namespace = pod["metadata"]["namespace"]
    variables: dict[str, str] = {}
    for entry in container.get("envFrom", []):
        variables.update(_env_from(entry, namespace, source))
    for entry in container.get("env", []):
        value = _env_value(pod, container, entry, variables, source)
        if value is not None:
            variables[entry["name"]] = value
    return variables


def _env_from(entry: JSON, namespace: str, source: ObjectSource) -> dict[str, str]:
    prefix = entry.get("prefix", "")
    if "secretRef" in entry:
        kind, reference = "Secret", entry["secretRef"]
    elif "configMapRef" in entry:
        kind, reference = "ConfigMap", entry["configMapRef"]
    else:
        raise ContainerConfigError(
            f"envFrom entry {entry} has neither secretRef nor configMapRef", permanent=True
        )
    data = _lookup(source, kind, namespace, reference.get("name", ""), bool(reference.get("optional", False)))
    return {prefix + key: _decode(value) for key, value in (data or {}).items() if key and "=" not in key}


def _env_value(
    pod: JSON, container: JSON, entry: JSON, defined: Mapping[str, str], source: ObjectSource
) -> str | None:
    if "valueFrom" not in entry:
        return expand_references(str(entry.get("value", "")), defined)
    value_from = entry["valueFrom"]
    namespace = pod["metadata"]["namespace"]
    if "secretKeyRef" in value_from:
        return _key_value(source, "Secret", namespace, value_from["secretKeyRef"])
    if "configMapKeyRef" in value_from:
        return _key_value(source, "ConfigMap", namespace, value_from["configMapKeyRef"])
    if "fieldRef" in value_from:
        return field_value(pod, value_from["fieldRef"]["fieldPath"])
    raise ContainerConfigError(
        f"env {entry['name']} of container {container['name']}: {sorted(value_from)} is not supported by the "
        "pod runner (supported: secretKeyRef, configMapKeyRef, fieldRef)",
        permanent=True,
    )


def _safe_relative_path(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ContainerConfigError(
            f"invalid volume item path {path!r}: it must be relative, without '..'", permanent=True
        )
    return relative


def _write_volume_file(folder: Path, path: str, data: bytes, mode: int) -> None:
    target = folder / _safe_relative_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    target.chmod(mode)


def _project_items(
    data: Mapping[str, bytes], items: Iterable[JSON] | None, description: str, optional: bool
) -> list[tuple[str, bytes, int | None]]:
    """Return (path, data, mode) for the selected keys of DATA, or for all keys when ITEMS is empty."""
    if not items:
        return [(key, value, None) for key, value in data.items()]
    selected: list[tuple[str, bytes, int | None]] = []
    for item in items:
        key = item["key"]
        if key not in data:
            if optional:
                continue
            raise ContainerConfigError(f"{description} has no key {key!r}")
        selected.append((str(item.get("path", key)), data[key], item.get("mode")))
    return selected


def _write_object_files(
    folder: Path, source: ObjectSource, kind: str, namespace: str, reference: JSON, default_mode: int
) -> None:
    name = reference.get("secretName") or reference.get("name", "")
    optional = bool(reference.get("optional", False))
    data = _lookup(source, kind, namespace, name, optional)
    if data is None:
        return
    for path, value, mode in _project_items(
        data, reference.get("items"), f"{kind} {namespace}/{name}", optional
    ):
        _write_volume_file(folder, path, value, mode if mode is not None else default_mode)


def _write_downward_files(folder: Path, pod: JSON, items: Iterable[JSON], default_mode: int) -> None:
    for item in items:
        if "fieldRef" not in item:
            raise ContainerConfigError(
                f"downward API item {item.get('path')!r}: only fieldRef is supported by the pod runner",
                permanent=True,
            )
        value = field_value(pod, item["fieldRef"]["fieldPath"]).encode()
        _write_volume_file(folder, item["path"], value, item.get("mode", default_mode))


def _write_projected_files(folder: Path, pod: JSON, volume: JSON, source: ObjectSource) -> None:
    namespace = pod["metadata"]["namespace"]
    default_mode = volume.get("defaultMode", _DEFAULT_FILE_MODE)
    for projection in volume.get("sources", []):
        if "secret" in projection:
            _write_object_files(folder, source, "Secret", namespace, projection["secret"], default_mode)
        elif "configMap" in projection:
            _write_object_files(folder, source, "ConfigMap", namespace, projection["configMap"], default_mode)
        elif "downwardAPI" in projection:
            _write_downward_files(folder, pod, projection["downwardAPI"].get("items", []), default_mode)
        # NOTE: serviceAccountToken and clusterTrustBundle sources are skipped, so the automatic
        # kube-api-access volume has no token file.


def materialise_volumes(pod: JSON, volumes_dir: Path, source: ObjectSource) -> dict[str, Path]:
    """Write the pod's volumes below VOLUMES_DIR and return each volume's host folder by volume name."""
    if volumes_dir.exists():
        shutil.rmtree(volumes_dir)
    volumes_dir.mkdir(parents=True)
    namespace = pod["metadata"]["namespace"]
    host_paths: dict[str, Path] = {}
    for volume in pod.get("spec", {}).get("volumes", []):
        name = volume["name"]
        if "hostPath" in volume:
            host_paths[name] = Path(volume["hostPath"]["path"])
            continue
        folder = volumes_dir / name
        folder.mkdir()
        host_paths[name] = folder
        if "secret" in volume:
            default_mode = volume["secret"].get("defaultMode", _DEFAULT_FILE_MODE)
            _write_object_files(folder, source, "Secret", namespace, volume["secret"], default_mode)
        elif "configMap" in volume:
            default_mode = volume["configMap"].get("defaultMode", _DEFAULT_FILE_MODE)
            _write_object_files(folder, source, "ConfigMap", namespace, volume["configMap"], default_mode)
        elif "downwardAPI" in volume:
            default_mode = volume["downwardAPI"].get("defaultMode", _DEFAULT_FILE_MODE)
            _write_downward_files(folder, pod, volume["downwardAPI"].get("items", []), default_mode)
        elif "projected" in volume:
            _write_projected_files(folder, pod, volume["projected"], source)
        elif "emptyDir" not in volume:
            kinds = sorted(set(volume) - {"name"})
            raise ContainerConfigError(
                f"volume {name!r} of type {', '.join(kinds)} is not supported by the pod runner "
                "(supported: secret, configMap, downwardAPI, projected, emptyDir, hostPath)",
                permanent=True,
            )
    return host_paths


def mount_table(container: JSON, host_paths: Mapping[str, Path]) -> MountTable:
    """Return the mount table of CONTAINER for volumes written to HOST_PATHS."""
    table: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        if "subPathExpr" in mount:
            raise ContainerConfigError(
                f"volume mount {mount['mountPath']} of container {container['name']}: subPathExpr is not "
                "supported by the pod runner",
                permanent=True,
            )
        if mount["name"] not in host_paths:
            raise ContainerConfigError(
                f"container {container['name']} mounts volume {mount['name']!r}, "
                "which the pod does not define",
                permanent=True,
            )
        mount_path = mount["mountPath"].rstrip("/")
        if not mount_path:
            # A volume mounted at / would rewrite every absolute path, so it is left out.
            continue
        host_path = host_paths[mount["name"]]
        if mount.get("subPath"):
            host_path = host_path / _safe_relative_path(mount["subPath"])
        table[mount_path] = host_path
    return MountTable(table)


def prepare_container(
    pod: JSON, container: JSON, host_paths: Mapping[str, Path], source: ObjectSource
) -> PreparedContainer:
    """Resolve CONTAINER's environment, command line and working folder for a local process."""
    mounts = mount_table(container, host_paths)
    variables = resolve_environment(pod, container, source)
    words = [str(word) for word in [*container.get("command", []), *container.get("args", [])]]
    if not container.get("command"):
        raise ContainerConfigError(
            f"container {container['name']} has no command: the pod runner cannot read the entrypoint of "
            f"image {container.get('image', '')!r}, so set command in the pod spec",
            permanent=True,
        )
    argv = [mounts.rewrite(expand_references(word, variables)) for word in words]
    environment = {name: mounts.rewrite(value) for name, value in variables.items()}
    working_dir = Path(mounts.rewrite(container["workingDir"])) if container.get("workingDir") else None
    return PreparedContainer(
        container["name"], str(container.get("image", "")), argv, " ".join(words), environment, working_dir
    )


# Variables that the pod runner passes from its own environment to every process, because a process
# cannot work without them or they describe the machine rather than the runner.
INHERITED_VARIABLES = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")


def process_environment(
    pod_variables: Mapping[str, str],
    *,
    hostname: str,
    runner_environment: Mapping[str, str],
    virtualenv_bin: Path,
    python_paths: Iterable[str],
) -> dict[str, str]:
    """Return the full environment of a container process.

    It contains the INHERITED_VARIABLES of the runner, HOSTNAME, then the pod's variables. PATH starts
    with the virtualenv's bin folder, followed by the pod's PATH or else the runner's. PYTHONPATH starts
    with PYTHON_PATHS, followed by the pod's PYTHONPATH.
    """
    environment = {
        name: runner_environment[name] for name in INHERITED_VARIABLES if name in runner_environment
    }
    environment["HOSTNAME"] = hostname
    environment.update(pod_variables)

    path = pod_variables.get("PATH", runner_environment.get("PATH", os.defpath))
    path_entries = [
        str(virtualenv_bin),
        *(entry for entry in path.split(os.pathsep) if entry != str(virtualenv_bin)),
    ]
    environment["PATH"] = os.pathsep.join(path_entries)

    python_path_entries = [*python_paths]
    if pod_variables.get("PYTHONPATH"):
        python_path_entries.append(pod_variables["PYTHONPATH"])
    if python_path_entries:
        environment["PYTHONPATH"] = os.pathsep.join(python_path_entries)
    return environment


def decode_secret_data(data: Mapping[str, str] | None) -> dict[str, bytes]:
    """Decode the base64 values of a Secret's `data`."""
    return {key: base64.b64decode(value) for key, value in (data or {}).items()}


def decode_config_map_data(
    data: Mapping[str, str] | None, binary_data: Mapping[str, str] | None
) -> dict[str, bytes]:
    """Merge a ConfigMap's `data` (text) and `binaryData` (base64) into bytes by key."""
    merged = {key: value.encode() for key, value in (data or {}).items()}
    merged.update({key: base64.b64decode(value) for key, value in (binary_data or {}).items()})
    return merged

"""Reading YAML that a person wrote (pipeline.yaml, features.yaml, mlops-nb.yaml) without letting it hang or
crash us, and the error that names the file and the field."""

from __future__ import annotations

from typing import Any

from mlops_nb.errors import InvalidInputError


class SpecError(InvalidInputError):
    """pipeline.yaml is not valid; the message names the file, the step and the field."""


MAX_YAML_VALUES = 100_000  # far beyond any pipeline; a "billion laughs" file expands to 10**9


def read_yaml(text: str, name: str) -> Any:
    """``yaml.safe_load``, refusing what would hang or crash us: aliases that expand past
    ``MAX_YAML_VALUES`` values, nesting deeper than Python's stack, numbers too long to convert."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, name)
        return loader.construct_document(node)
    except SpecError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SpecError(f"{name}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except RecursionError:
        raise SpecError(f"{name}: nests too deeply to read; flatten it") from None
    except ValueError as exc:  # an integer of thousands of digits
        what = "a number is too long (over 4,300 digits)" if "digits" in str(exc) else str(exc).splitlines()[0][:120]
        raise SpecError(f"{name}: a value cannot be read: {what}") from None
    finally:
        loader.dispose()


def _check_expansion(root, name: str) -> None:
    """Count the values the document stands for once its aliases are expanded, without expanding them."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    active: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            children = _children(node)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_YAML_VALUES:
                raise SpecError(f"{name}: its aliases (*name) stand for more than {MAX_YAML_VALUES:,} values; "
                                "write the values out, or use fewer aliases")
            continue
        if key in sizes:
            continue
        if key in active:
            raise SpecError(f"{name}: an alias (*name) refers to the value it is part of; write the values out")
        active.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node) -> list:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []

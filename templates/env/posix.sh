# conda-fuse: {{ what }} without conda's shell function ({{ shell }}).
{%- for s in steps %}
{%- if s.kind == "set" %}
export {{ s.name }}={{ s.value }}
{%- else if s.kind == "unset" %}
unset {{ s.name }}
{%- else %}
. {{ s.value }}
{%- endif %}
{%- endfor %}
{{ rehash }}

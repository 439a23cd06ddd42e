# conda-fuse: {{ what }} without conda's shell function (fish).
{%- for s in steps %}
{%- if s.kind == "set" %}
set -gx {{ s.name }} {{ s.value }}
{%- else if s.kind == "unset" %}
set -q {{ s.name }}; and set -e {{ s.name }}
{%- else %}
source {{ s.value }}
{%- endif %}
{%- endfor %}

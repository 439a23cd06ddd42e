# conda-fuse: {{ what }} without conda's shell function ({{ shell }}).
{%- for s in steps %}
{%- match s %}
{%- when Step::Set { name, value } %}
export {{ name }}={{ value }}
{%- when Step::Unset { name } %}
unset {{ name }}
{%- when Step::Source { path } %}
. {{ path }}
{%- endmatch %}
{%- endfor %}
{{ rehash }}

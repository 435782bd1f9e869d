"""Sphinx extension: write each inline script into a page once.

With Sphinx 7.4, an inline script that an extension adds after the builder has started (sphinx-thebe's
`const THEBE_JS_URL = ...`, sphinx-togglebutton's selector) reaches the page twice: once registered with
the file name None and once with "", which Sphinx does not see as the same. A repeated `const` is a
JavaScript SyntaxError on every page, so this keeps the first copy of each identical script.
"""


def _unique_scripts(app, pagename, templatename, context, doctree):
    seen = set()
    unique = []
    for script in context.get("script_files", ()):
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", script) or "", tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    # Late, so that scripts other extensions add for this page are seen too.
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

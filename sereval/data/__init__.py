# Package data of sereval (the paper's published numbers, the papermill notebooks). A package, so that
# setuptools ships it in wheels as well as in editable installs.

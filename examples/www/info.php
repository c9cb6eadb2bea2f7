<?php
// phpinfo() shows the whole environment: keep it off unless you need it.
// Enable it by creating the file www/.phpinfo-enabled (dot-files are never served).
if (!file_exists(__DIR__ . '/.phpinfo-enabled')) {
    http_response_code(404);
    header('Content-Type: text/plain');
    echo "phpinfo is disabled: touch examples/www/.phpinfo-enabled to enable it\n";
    exit;
}
phpinfo();

<?php
// The example site's home page: what fcgihost passed to PHP, a form, an upload.
$title = 'fcgihost example';
?><!doctype html>
<html lang="en"><head><meta charset="utf-8"><title><?= $title ?></title>
<link rel="stylesheet" href="/static/site.css"></head>
<body>
<h1><?= $title ?></h1>
<p>Served by <?= htmlspecialchars($_SERVER['SERVER_SOFTWARE'] ?? '?') ?> through PHP <?= PHP_VERSION ?>
 (process <?= getmypid() ?>).</p>
<ul>
  <li><a href="/form.php">A form (POST)</a></li>
  <li><a href="/upload.php">An upload</a></li>
  <li><a href="/info.php">phpinfo()</a> (only when enabled, see info.php)</li>
  <li><a href="/static/hello.txt">A static file</a></li>
</ul>
<h2>Request</h2>
<table>
<?php foreach (['REQUEST_METHOD', 'REQUEST_URI', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING',
                'SERVER_NAME', 'SERVER_PORT', 'REMOTE_ADDR', 'HTTP_USER_AGENT'] as $k): ?>
<tr><th><?= $k ?></th><td><?= htmlspecialchars($_SERVER[$k] ?? '') ?></td></tr>
<?php endforeach; ?>
</table>
</body></html>

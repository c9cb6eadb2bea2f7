<?php
$f = $_FILES['file'] ?? null;
?><!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Upload</title></head><body>
<?php if ($f && $f['error'] === UPLOAD_ERR_OK): ?>
<p>Received <?= htmlspecialchars($f['name']) ?>: <?= $f['size'] ?> bytes,
 sha1 <?= sha1_file($f['tmp_name']) ?>.</p>
<?php elseif ($f): ?>
<p>Upload failed (error <?= (int)$f['error'] ?>).</p>
<?php endif; ?>
<form method="post" enctype="multipart/form-data"><input type="file" name="file"> <button>Upload</button></form>
<p><a href="/">Back</a></p>
</body></html>

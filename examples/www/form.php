<?php
$name = $_POST['name'] ?? null;
?><!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Form</title></head><body>
<?php if ($name !== null): ?>
<p>Hello, <?= htmlspecialchars($name) ?>!</p>
<?php endif; ?>
<form method="post"><label>Name <input name="name"></label> <button>Send</button></form>
<p><a href="/">Back</a></p>
</body></html>

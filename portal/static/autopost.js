document.getElementById('autopost').submit();

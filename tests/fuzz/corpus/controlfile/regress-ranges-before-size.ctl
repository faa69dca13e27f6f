yt-dlp-async resume 1
range 0 294912
size 1000
etag -
last-modified -

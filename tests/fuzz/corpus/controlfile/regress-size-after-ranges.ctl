yt-dlp-async resume 1
size 6291456
etag "0-6291456-0"
last-modified -
range 0 294912
range 1585152 1851392
size 1000

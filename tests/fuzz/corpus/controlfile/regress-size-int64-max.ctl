yt-dlp-async resume 1
size 9223372036854775807
etag "x"
last-modified -
range 0 9223372036854775807

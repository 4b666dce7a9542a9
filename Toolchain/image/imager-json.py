#!/usr/bin/env python3
"""Toolchain/image/imager-json.py RAW XZ OUT URL VERSION BOARD RELEASE SOURCE_DATE_EPOCH KERNEL

Writes a Raspberry Pi Imager repository (JSON, {"os_list": [entry]}) for one wisp image:
name, description, url, extract_size/extract_sha256 (the raw .img), image_download_size/
image_download_sha256 (the .img.xz), release_date (from SOURCE_DATE_EPOCH), devices (Imager's
device tags) and init_format "cloudinit": Imager's OS customisation then writes user-data and
network-config to the boot partition, which the image's wisp-init reads (Imager's "systemd"
format relies on systemd.run=, which the image's init ignores).
"""
import datetime, hashlib, json, os, sys

raw, xz, out, url, version, board, release, epoch, kver = sys.argv[1:]
DEVICES = {'rpi3b': 'pi3-64bit', 'rpi3bplus': 'pi3-64bit', 'rpizero2w': 'pi3-64bit',
           'rpi4b': 'pi4-64bit', 'rpi5': 'pi5-64bit'}
NAMES = {'rpi3b': 'Raspberry Pi 3 Model B', 'rpi3bplus': 'Raspberry Pi 3 Model B+',
         'rpi4b': 'Raspberry Pi 4 Model B', 'rpizero2w': 'Raspberry Pi Zero 2 W',
         'rpi5': 'Raspberry Pi 5, untested'}


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


entry = {
    'name': f'wisp {version} ({NAMES[board]}, Debian {release})',
    'description': f'wisp relay node appliance: Debian {release} arm64, kernel {kver}, read-only '
                   'A/B root; Wi-Fi and host name from the OS customisation',
    'url': url,
    'extract_size': os.path.getsize(raw),
    'extract_sha256': sha256(raw),
    'image_download_size': os.path.getsize(xz),
    'image_download_sha256': sha256(xz),
    'release_date': datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime('%Y-%m-%d'),
    'devices': [DEVICES[board]],
    'init_format': 'cloudinit',
}
with open(out + '.tmp', 'w') as f:
    json.dump({'os_list': [entry]}, f, indent=2)
    f.write('\n')
os.replace(out + '.tmp', out)
